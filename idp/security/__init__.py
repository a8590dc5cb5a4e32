"""Security primitives anyone may use: passwords, secrets, headers, client IP, rate-limit keys."""
