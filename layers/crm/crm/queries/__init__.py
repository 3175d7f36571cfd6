"""Reading leads: filtered lists on the list indexes, prefix search, a lead's timeline."""
