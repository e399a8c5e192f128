"""bench: not implemented yet (see the open issues)."""
HELP = 'bench (not implemented yet)'


def add_arguments(parser):
    pass


def run(args):
    print('audio_vision bench: not implemented yet')
    return 1
