"""Food safety at every site: site staff and health certificates, retained samples, daily checklists, cold-storage
temperature logs, and the one deviation workflow every breach in the system goes through."""
