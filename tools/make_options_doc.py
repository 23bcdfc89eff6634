"""Write docs/options.md, the option reference, from the option schema (``mrnet_arch/models/mrnet_options.py``).

Rerun this after changing the schema::

    python tools/make_options_doc.py            # write
    python tools/make_options_doc.py --check    # exit 1 if docs/options.md differs from what it would write
"""
import argparse
import sys
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from mrnet_arch.reports.options_doc import DOC, render  # noqa: E402
from mrnet_arch.storage.files import write_text  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--check', action='store_true', help=f'only compare; exit 1 if {DOC} is out of date')
    args = parser.parse_args(argv)
    path = osp.join(ROOT, DOC)
    text = render()
    current = open(path, encoding='utf-8').read() if osp.isfile(path) else None
    if current == text:
        print(f'{DOC} is up to date')
        return 0
    if args.check:
        print(f'{DOC} is out of date (run python tools/make_options_doc.py)')
        return 1
    write_text(path, text)
    print(f'{DOC} written')
    return 0


if __name__ == '__main__':
    sys.exit(main())
