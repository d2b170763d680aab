"""Deployment to Google Cloud: Dataflow image and templates, launch scripts (see docs_drafts/deploy.md)."""
