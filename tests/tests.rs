// Integration tests live in the modules below.
