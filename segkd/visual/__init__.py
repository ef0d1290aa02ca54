"""Pictures of what networks compute: feature maps, predictions, what a teacher knows, report figures."""
