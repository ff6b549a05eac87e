"""What a classifier learned: attributions of its test predictions to their tokens (Integrated
Gradients through captum), a page and tables to read them, and a check that they are faithful."""
