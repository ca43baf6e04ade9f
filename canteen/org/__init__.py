"""Organisation: districts, communities, canteens and central kitchens."""
