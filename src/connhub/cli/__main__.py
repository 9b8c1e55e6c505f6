from connhub.cli.main import app

app(prog_name="connhub")
