"""evaluate: not implemented yet (see the open issues)."""
HELP = 'evaluate (not implemented yet)'


def add_arguments(parser):
    pass


def run(args):
    print('audio_vision evaluate: not implemented yet')
    return 1
