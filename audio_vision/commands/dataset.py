"""dataset: not implemented yet (see the open issues)."""
HELP = 'dataset (not implemented yet)'


def add_arguments(parser):
    pass


def run(args):
    print('audio_vision dataset: not implemented yet')
    return 1
