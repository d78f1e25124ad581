"""Ticket intake: RMM alerts (alerts.py, sources.py, rules.py); every path lands in TicketService."""
