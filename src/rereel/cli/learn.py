"""Commands of the `learn` layer (autoencoder, learning to see). Filled in by the learn work."""

import typer

from rereel.cli import app

autoencoder_app = typer.Typer(help="Autoencode a film (VAE-GAN): train, render, walk.", no_args_is_help=True)
see_app = typer.Typer(help="Learning to see (pix2pix): train on a corpus, render a video through it.", no_args_is_help=True)
app.add_typer(autoencoder_app, name="autoencoder")
app.add_typer(see_app, name="see")
