from braintrust_migrate.entry import main

main()
