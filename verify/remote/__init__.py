"""Small programs a check runs *inside* a lab namespace or container (read as text, run with
`python3 -c`), where this package is not installed."""
