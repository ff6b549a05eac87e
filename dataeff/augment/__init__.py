"""Data augmentation: text augmenters (EDA, TF-IDF replacement, MLM contextual replacement),
torchvision image pipelines, and `Augmentation`, which applies them online or offline."""
