from mdn.cli import main

main()
