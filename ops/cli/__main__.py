from wanotify.ops.cli import main

main()
