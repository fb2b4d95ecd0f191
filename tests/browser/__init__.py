"""Browser tests of the progress page (`/api/ui/`) and devhost's monitor (`/runtime/monitor/`), driven through
Playwright and Debian's Chromium."""
