from fer_edge.cli.app import main

main()
