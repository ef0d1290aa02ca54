"""segkd: knowledge distillation for semantic segmentation, composed with Hydra, trained with Lightning."""

__version__ = "0.1.0"
