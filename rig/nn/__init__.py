"""Networks only, no I/O: StyleGAN2 spectrogram generator, vocoders, mel front end."""
