"""Listeners for the storage-backed triggers (timer, queue, blob) and the manager that runs them."""
