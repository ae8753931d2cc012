"""Decoding and preparing media: images (and later audio and video) into arrays a model takes."""
