from dagu_ci.cli import main

main()
