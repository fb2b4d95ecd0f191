"""HTTP functions of the sample: the starter, the two event raisers and the status route."""
