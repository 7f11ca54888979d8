from navigator.cli import app

app()
