"""The safety board's Streamlit dashboard: read-only views of the warehouse marts."""
