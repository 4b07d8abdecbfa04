"""``python -m looplab.cli``: the same commands as the ``looplab`` script."""

from looplab.cli import app

app()
