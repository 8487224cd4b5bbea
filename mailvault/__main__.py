from mailvault.entry import main

main()
