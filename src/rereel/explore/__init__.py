"""Explore an archive library: groups of shots the network sees alike, compilations found by
example or by words, reaction GIFs, and a 2-D map. Reads the library; never changes it.

Modules: query (what `similar` is asked for, as a vector), words (ImageNet class names for
the default encoder), search (ranking shots), clustering (k-means + silhouette), footage
(decoding shots at output size), sheets (PNG contact sheets), reels (grid videos and
compilations), contact (index.html), gif (captioned, size-capped GIFs), tsne and atlas (the map).
"""
