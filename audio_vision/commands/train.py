"""train: not implemented yet (see the open issues)."""
HELP = 'train (not implemented yet)'


def add_arguments(parser):
    pass


def run(args):
    print('audio_vision train: not implemented yet')
    return 1
