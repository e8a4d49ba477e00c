from rereel.cli import main

main()
