"""Browser tests of the progress page (`/api/ui/`), driven through Playwright and Debian's Chromium."""
