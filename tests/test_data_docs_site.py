"""The GX Data Docs site of a home: validation results and expectation suites, and no
profiling section.  We never profile, and GX's profiling section lists every validation
result ever stored on every render (about 0.2 ms each, so renders slowed as the program's
history grew).  A home whose site was set up by an earlier version, or moved to another
folder, gets the current site when GX is next used."""
from __future__ import annotations

from safety_ledger import validation
from safety_ledger.home import Home


def test_a_home_set_up_by_an_earlier_version_gets_the_current_docs_site(tmp_path):
    import great_expectations as gx

    home = Home(tmp_path / "home").ensure()
    earlier = gx.get_context(mode="file", project_root_dir=str(home.root))
    earlier.add_data_docs_site(validation.DOCS_SITE, {   # as every home before 2026-11-26
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": str(tmp_path / "where the home was" / "data_docs")},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}})

    validation._context.cache_clear()
    try:
        validation._context(str(home.root))
    finally:
        validation._context.cache_clear()

    saved = gx.get_context(mode="file", project_root_dir=str(home.root))   # read from disk again
    site = saved.get_config().data_docs_sites[validation.DOCS_SITE]
    assert site["site_section_builders"] == {"profiling": "None"}
    assert site["store_backend"]["base_directory"] == str(home.data_docs)
    builders = saved._init_site_builder_for_data_docs_site_creation(   # as build_data_docs does
        site_name=validation.DOCS_SITE, site_config=dict(site))
    assert sorted(builders.site_section_builders) == ["expectations", "validations"]
