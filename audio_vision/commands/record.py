"""record: not implemented yet (see the open issues)."""
HELP = 'record (not implemented yet)'


def add_arguments(parser):
    pass


def run(args):
    print('audio_vision record: not implemented yet')
    return 1
