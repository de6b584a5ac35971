/* AWS shared credentials and config files, read as the AWS CLI reads them: ~/.aws/credentials
 * ([NAME] sections) and ~/.aws/config ([default] and [profile NAME] sections), or the files named
 * by AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE. Keys from the credentials file win over
 * the config file's. The machine records only the profile's name; the files are re-read each
 * time a credential is needed, so rotated keys are picked up. */
#ifndef MACHINE_AWSPROFILE_H
#define MACHINE_AWSPROFILE_H

#include <stdbool.h>

#include "cleanup.h"

struct merr;

struct aws_profile {
    char *access_key;    /* aws_access_key_id */
    char *secret_key;    /* aws_secret_access_key */
    char *session_token; /* aws_session_token */
    char *region;        /* region */
};

void aws_profile_clear(struct aws_profile *p);

/* Pure: takes the keys of profile `name` from one file's text into p, keeping what p already
 * has (so the credentials file is parsed first). config_file: sections are [profile NAME]
 * ([default] or [profile default] for "default"). Returns 1 when the section exists, 0 when
 * not; MERR_CORRUPT names the line of a section header without ']'. */
int aws_profile_parse(const char *text, const char *name, bool config_file,
                      struct aws_profile *p, struct merr *err) MUST_CHECK;

/* The profile from the files (environment-named or under $HOME/.aws). MERR_NOT_FOUND when
 * neither file has it, MERR_INVALID when it has no access key pair. */
int aws_profile_load(const char *name, struct aws_profile *p, struct merr *err) MUST_CHECK;

#endif
