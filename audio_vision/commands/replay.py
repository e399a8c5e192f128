"""replay: not implemented yet (see the open issues)."""
HELP = 'replay (not implemented yet)'


def add_arguments(parser):
    pass


def run(args):
    print('audio_vision replay: not implemented yet')
    return 1
