"""Analysis tools behind segkd's analysis commands: dataset statistics (segkd.analyze), inference
profiling and export (segkd.profile), bias-variance diagnostics of students (segkd.bias_variance)."""
