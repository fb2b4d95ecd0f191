"""Tests of the Functions app: replay, HTTP functions, deployability."""
