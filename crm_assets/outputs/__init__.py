"""What people read: the aggregate views, the Excel workbook and lists, the exports and the Power BI files.

Outputs read ``reporting.customer_snapshot``; they import ``core`` and ``layers``.
"""
