"""The azd template (azure.yaml, infra/) and the GitHub workflows, checked by what runs without Azure."""
