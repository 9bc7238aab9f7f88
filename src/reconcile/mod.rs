//! The slim reconciler: admitted Tenants become Services, Secrets and one StatefulSet per pool.
