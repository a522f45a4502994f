"""The ground every layer stands on; imports no layer.

Settings and errors, month arithmetic and the calendar (``partitions``), the
CSV reader and the landing folder's profiles, the warehouse resources, the
business rules' parameters, the quality engine and the helpers of monthly
partitioned writes.
"""
