"""Pixel-space post-training of latent diffusion models (paper §3).

A PyTorch + diffusers package that never imports Django: the web app drives it through
its command line and Python entry point, so it runs the same on a laptop CPU, in a
Celery worker or on a GPU cluster. The option declarations (:mod:`training.options`) and
the pipeline-folder reader (:mod:`training.pipelines`) import no torch either: the web
app builds its forms and checks from them without loading a model.
"""
