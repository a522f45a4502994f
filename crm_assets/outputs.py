"""Outputs for Excel and Power BI: the assets that read reporting.customer_snapshot.

(Filled in by the outputs work: reporting views, the monthly workbook, the Power BI star schema.)
"""

output_assets: list = []
