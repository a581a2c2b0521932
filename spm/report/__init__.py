"""The board's monthly social performance report: PDF and XLSX built from the services' APIs,
by ``spm report``, on a schedule, or from the dashboard's button."""
