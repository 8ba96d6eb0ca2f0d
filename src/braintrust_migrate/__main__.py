from braintrust_migrate.cli import main

main()
