"""EvalHub: human evaluation and preference post-training of latent diffusion models."""

from evalhub.celery import app as celery_app

__all__ = ("celery_app",)
