"""How the OpenAPI schema describes Clerk authentication (drf-spectacular finds the extension
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
