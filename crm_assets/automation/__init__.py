"""How runs start without a person: the job, the monthly schedule, the new-file sensor."""
