"""City reports: one city (zone) and period from the warehouse, as tables, a workbook, GeoJSON and a page."""
