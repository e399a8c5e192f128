"""demo: not implemented yet (see the open issues)."""
HELP = 'demo (not implemented yet)'


def add_arguments(parser):
    pass


def run(args):
    print('audio_vision demo: not implemented yet')
    return 1
