"""How the OpenAPI schema describes Clerk tokens and API keys (drf-spectacular finds the extensions
when this module is imported: see AccountsConfig.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from accounts.authentication import SESSION_COOKIE


class ClerkAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ClerkAuthentication"
    name = ["clerkBearer", "clerkSession"]

    def get_security_requirement(self, auto_schema):
        return [{"clerkBearer": []}, {"clerkSession": []}]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "A Clerk session token: `Authorization: Bearer <token>`.",
            },
            {
                "type": "apiKey",
                "in": "cookie",
                "name": SESSION_COOKIE,
                "description": "Clerk's session cookie, as a browser on the same site sends it. "
                "With it, POST, PATCH and DELETE need an `Origin` (or `Referer`) among the "
                "allowed origins, or answer 403.",
            },
        ]


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "hyd_live_… or hyd_test_…",
            "description": "An API key for servers (`POST /api/3d/api-keys`): "
            "`Authorization: Bearer hyd_live_…`. It acts as its user; a test key's jobs run on the "
            "weight-free CPU path, never a GPU.",
        }
